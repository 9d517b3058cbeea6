import { hash, verify } from '@node-rs/argon2';

/** argon2id with OWASP's 2024 minimum (19 MiB, t=2, p=1): ~30 ms per hash on this class of machine. */
const OPTS = { algorithm: 2 as const, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** Verified against when the user does not exist, so unknown IDs cost the same time as wrong passwords. */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword('kilowire-timing-equaliser');
  return dummyHash;
}
