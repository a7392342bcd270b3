// Preloaded into a process (node --import): writes its peak RSS (KiB) to BENCH_RSS_FILE on exit. Used by
// test/bounded.test.ts and test/pg-bounded.test.ts (memory bounds); npm run bench preloads nothing and reads
// the peak RSS through GNU time instead (see test/bench/bench.ts).
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  if (process.env.BENCH_RSS_FILE) writeFileSync(process.env.BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
