// stubs/: file <-> encrypted content-addressed blocks <-> `.f` stub. Main class: StubEngine.

export { StubEngine, type EngineOptions, type Outcome } from './engine.js'
export { StubError, StubCodes, type StubCode } from './errors.js'
export { loadCrypto, loadNative, loadWasm, toHex, fromHex, type Crypto } from './crypto.js'
export { deriveKeys, createSecret, loadSecret, KDF_LABELS, SECRET_FILE, type Keys } from './keys.js'
export { findCut, chunkLengths, chunkFile, DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js'
export { encodeBlock, decodeBlock } from './block-codec.js'
export { encodeStub, decodeStub, isStubBytes, type Stub, type StubBlock } from './stub-format.js'
export { BlockStore } from './block-store.js'
export { stubNameFor, targetNameFor, isStubName, isTempName, STUB_SUFFIX } from './names.js'
export type { StubResult } from './ingest.js'
export type { HydrateResult } from './hydrate.js'
export type { Progress, OpOptions } from './context.js'
