// The key index of a token-backed KMS plugin (token-backend.ts): made and rotated beside the
// token's keys. The index names kids and dates only; the keys are generated in the token. As with
// the key file, rotation keeps every earlier key decrypt-only (the API server holds objects under
// them until each is rewritten), and one rotation runs at a time.
//
// Order of writes on rotation: the new key is made in the token first, then the index naming it is
// stored. A crash between the two leaves a key in the token that no index names (an orphan,
// harmless: nothing was encrypted under it), never an index naming a key that does not exist.
import { readFile } from 'node:fs/promises';
import { activeRecord, parseKekIndex, serializeKekIndex } from '../crypto/kek-index.js';
import { Pkcs11KekBackend } from '../crypto/pkcs11-kek-backend.js';
import type { Pkcs11Session } from '../crypto/pkcs11-session.js';
import { createFile, replaceFile, withRotationLock, type KeyFileRotation } from './key-file.js';
import { KMS_KEY_OWNER } from './token-backend.js';

/** Makes the first key in the token and the index naming it; refuses to replace an index. */
export async function createTokenIndex(path: string, session: Pkcs11Session, now: Date): Promise<string> {
  // Refused before a key is made, so an existing index never leaves an orphan behind.
  if (await readFile(path).then(() => true, () => false)) throw Object.assign(new Error(`${path} exists`), { code: 'EEXIST' });
  const backend = await Pkcs11KekBackend.create(session, now, KMS_KEY_OWNER);
  await createFile(path, serializeKekIndex(backend.index));
  return backend.activeKid();
}

/** A new active key made in the token; every earlier key stays, decrypt-only. */
export async function rotateTokenIndex(path: string, session: Pkcs11Session, now: Date): Promise<KeyFileRotation> {
  return withRotationLock(path, async () => {
    const index = parseKekIndex(await readFile(path, 'utf8'));
    const previous = activeRecord(index).kid;
    const backend = await Pkcs11KekBackend.open(session, index, KMS_KEY_OWNER);
    // usage {} keeps every kid ("unknown, keep") and retention covers them all: nothing retires.
    const rotation = await backend.rotate({ retention: index.keys.length, usage: {}, now });
    await replaceFile(path, serializeKekIndex(backend.index));
    return { activated: rotation.activated, deactivated: previous, keys: backend.liveKids().length };
  });
}
