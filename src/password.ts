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

type Argon2 = typeof import('@node-rs/argon2');

/** The bundled CJS module, imported dynamically, exposes its exports as `default` only. */
async function loadArgon2(): Promise<Argon2> {
  const mod = (await import('@node-rs/argon2')) as Argon2 & { default?: Argon2 };
  return mod.default ?? mod;
}

export async function hashPassword(password: string): Promise<string> {
  return (await loadArgon2()).hash(password, ARGON2_OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  const argon2 = await loadArgon2();
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false; // not an argon2 hash (set by another tool): treat as different
  }
}
