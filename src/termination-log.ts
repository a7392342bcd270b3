/**
 * Kubernetes shows the content of /dev/termination-log in `kubectl describe pod`. The default path
 * is written only when it exists (the kubelet creates it), so a run on a laptop or in a plain
 * container leaves nothing behind; an explicit TERMINATION_LOG is created.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { visible } from './log.js';
import { redact } from './redact.js';

const DEFAULT_PATH = '/dev/termination-log';

export function writeTerminationLog(message: string, configured: string | undefined): void {
  const path = configured || DEFAULT_PATH;
  if (!configured && !existsSync(path)) return;
  try {
    // Kubernetes keeps at most 4096 bytes.
    // Line breaks are the message's own layout (message, problems, fix); any other control character is shown.
    writeFileSync(path, redact(message.split('\n').map(visible).join('\n')).slice(0, 4000) + '\n');
  } catch {
    /* read-only or missing: the message is in the logs anyway */
  }
}
