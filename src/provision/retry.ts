/**
 * Concurrent catalog updates from outside our lock (a GRANT racing another run's on the same
 * database row: XX000 "tuple concurrently updated"; 23505, 40001, 40P01): the work is tried again,
 * at most 3 times, with a fresh look at the state.
 */
import { errorCode } from '../db/connect.js';

const RETRYABLE = new Set(['XX000', '23505', '40001', '40P01']);
const ATTEMPTS = 3;

export async function withRetries<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!RETRYABLE.has(errorCode(error)) || attempt >= ATTEMPTS) throw error;
    }
  }
}
