import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProgress, formatTimeLeft, type ProgressStream } from './progress.js';

function fakeStream(over: Partial<ProgressStream> = {}) {
  const writes: string[] = [];
  const stream: ProgressStream = {
    isTTY: true,
    write(text: string) {
      writes.push(text);
      return true;
    },
    ...over,
  };
  return { stream, writes };
}

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('createProgress', () => {
  it('writes nothing at all when disabled or not at a terminal', () => {
    for (const [enabled, isTTY] of [
      [false, true],
      [true, false],
      [true, undefined],
      [false, false],
    ] as const) {
      const { stream, writes } = fakeStream({ isTTY });
      const clock = fakeClock();
      const progress = createProgress({ label: 'fleet check', total: 10, stream, enabled, now: clock.now });
      for (let i = 0; i <= 10; i++) {
        clock.advance(500);
        progress.update(i, 1);
      }
      progress.done();
      assert.deepEqual(writes, [], `enabled ${enabled}, isTTY ${isTTY}`);
    }
  });

  it('redraws the line with the count, the failures, the rate and the time left', () => {
    const { stream, writes } = fakeStream();
    const clock = fakeClock();
    const progress = createProgress({ label: 'fleet check', total: 1000, stream, enabled: true, now: clock.now });
    progress.update(0, 0);
    // No rate or time left before the first completion.
    assert.deepEqual(writes, ['\rfleet check  0/1000  0 failed\x1b[K']);
    clock.advance(2_000);
    progress.update(82, 3);
    // 82 in 2 s: 41.0/s; 918 left: 22.4 s, shown rounded up.
    assert.equal(writes[1], '\rfleet check  82/1000  3 failed  41.0/s  ~23 s left\x1b[K');
  });

  it('says the time left in minutes past 60 s, and none once everything is done', () => {
    const { stream, writes } = fakeStream();
    const clock = fakeClock();
    const progress = createProgress({ label: 'fleet bootstrap', total: 100, stream, enabled: true, now: clock.now });
    clock.advance(10_000);
    progress.update(10, 0);
    // 1/s, 90 left: 1 min 30 s.
    assert.equal(writes[0], '\rfleet bootstrap  10/100  0 failed  1.0/s  ~1 min 30 s left\x1b[K');
    clock.advance(90_000);
    progress.update(100, 2);
    assert.equal(writes[1], '\rfleet bootstrap  100/100  2 failed  1.0/s\x1b[K');
  });

  it('redraws at most 10 times a second, but always the final state', () => {
    const { stream, writes } = fakeStream();
    const clock = fakeClock();
    const progress = createProgress({ label: 'fleet check', total: 50, stream, enabled: true, now: clock.now });
    for (let i = 1; i <= 50; i++) {
      clock.advance(10);
      progress.update(i, 0);
    }
    // 500 ms: the first update, then one every 100 ms (at 110, 210, 310, 410 ms), then the final state at 500 ms.
    assert.equal(writes.length, 6);
    assert.match(writes[0] ?? '', /^\rfleet check {2}1\/50 /);
    assert.match(writes[1] ?? '', /^\rfleet check {2}11\/50 /);
    assert.equal(writes[5], '\rfleet check  50/50  0 failed  100.0/s\x1b[K');
  });

  it('erases the line on done, and draws nothing after it', () => {
    const { stream, writes } = fakeStream();
    const clock = fakeClock();
    const progress = createProgress({ label: 'fleet check', total: 5, stream, enabled: true, now: clock.now });
    clock.advance(1000);
    progress.update(1, 0);
    progress.done();
    assert.equal(writes.at(-1), '\r\x1b[K');
    clock.advance(1000);
    progress.update(2, 0);
    progress.done();
    assert.equal(writes.length, 2);
  });

  it('erases nothing when nothing was drawn', () => {
    const { stream, writes } = fakeStream();
    createProgress({ label: 'fleet check', total: 5, stream, enabled: true }).done();
    assert.deepEqual(writes, []);
  });

  it('cuts the line to the width of the terminal (one column short of it)', () => {
    const { stream, writes } = fakeStream({ columns: 21 });
    const clock = fakeClock();
    const progress = createProgress({ label: 'fleet check', total: 1000, stream, enabled: true, now: clock.now });
    clock.advance(2000);
    progress.update(82, 3);
    assert.equal(writes[0], '\rfleet check  82/1000\x1b[K');
  });

  it('makes control characters of the label visible', () => {
    const { stream, writes } = fakeStream();
    createProgress({ label: 'a\nb', total: 2, stream, enabled: true, now: () => 0 }).update(0, 0);
    assert.equal(writes[0], '\ra\\x0ab  0/2  0 failed\x1b[K');
  });
});

describe('Progress.print', () => {
  it('writes a log line above the progress line, then draws it again', () => {
    const { stream, writes } = fakeStream();
    const clock = fakeClock();
    const progress = createProgress({ label: 'provision', total: 4, stream, enabled: true, now: clock.now });
    progress.print('before anything is drawn');
    clock.advance(1000);
    progress.update(1, 0);
    writes.length = 1;
    progress.print('alpha: created');
    assert.deepEqual(writes.slice(1), ['\r\x1b[Kalpha: created\n\rprovision  1/4  0 failed  1.0/s  ~3 s left\x1b[K']);
    assert.equal(writes[0], 'before anything is drawn\n');
    progress.done();
    writes.length = 0;
    progress.print('after done');
    assert.deepEqual(writes, ['after done\n']);
  });

  it('off a terminal, only the line itself', () => {
    const { stream, writes } = fakeStream({ isTTY: false });
    const progress = createProgress({ label: 'provision', total: 4, stream, enabled: true });
    progress.update(1, 0);
    progress.print('alpha: created');
    assert.deepEqual(writes, ['alpha: created\n']);
  });
});

describe('formatTimeLeft', () => {
  it('seconds, then minutes and seconds, then hours and minutes', () => {
    assert.equal(formatTimeLeft(0), '0 s');
    assert.equal(formatTimeLeft(20.2), '21 s');
    assert.equal(formatTimeLeft(59), '59 s');
    assert.equal(formatTimeLeft(60), '1 min 00 s');
    assert.equal(formatTimeLeft(65), '1 min 05 s');
    assert.equal(formatTimeLeft(3599), '59 min 59 s');
    assert.equal(formatTimeLeft(3600 * 2 + 180), '2 h 03 min');
  });
});
