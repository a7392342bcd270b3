/**
 * argon2id with OWASP's minimum parameters (19 MiB, 2 iterations, 1 lane), ≈10 ms here.
 * The native addon is loaded on first use only: a re-run of a complete instance never hashes.
 */
export const ARGON2_OPTIONS = {
  algorithm: 2, // Algorithm.Argon2id (a const enum, which isolated modules cannot import)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export async function hashPassword(password: string): Promise<string> {
  const argon2 = await import('@node-rs/argon2');
  return argon2.hash(password, ARGON2_OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  const argon2 = await import('@node-rs/argon2');
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false; // not an argon2 hash (set by another tool): treat as different
  }
}
