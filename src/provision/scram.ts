/**
 * A SCRAM-SHA-256 verifier computed here (RFC 5802 / 7677, as PostgreSQL stores it), so that
 * CREATE ROLE ... PASSWORD never carries the plaintext: a failing statement is written to the
 * server log, and a verifier there reveals nothing usable. Login with the plaintext still works.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

const ITERATIONS = 4096; // PostgreSQL's default scram_iterations

export function scramVerifier(password: string, salt = randomBytes(16)): string {
  // PostgreSQL applies SASLprep; our generated passwords are ASCII, for which it is the identity.
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return (
    `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$` +
    `${storedKey.toString('base64')}:${serverKey.toString('base64')}`
  );
}

/** A strong random password that survives URLs, .env files and shells unquoted. */
export function generatePassword(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
