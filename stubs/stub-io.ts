// Reading a stub from disk safely: it must be a regular file within the size limit; then decode.

import { promises as fsp, constants as fsc } from 'node:fs'
import type { EngineContext } from './context.js'
import { decodeStub, MAX_STUB_BYTES, type Stub } from './stub-format.js'
import { StubError, StubCodes, ioError } from './errors.js'

export async function readStubFile (ctx: Pick<EngineContext, 'crypto' | 'keys'>, path: string, opts: { unauthenticated?: boolean } = {}): Promise<Stub> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(path)} does not exist`)
    if (code === 'ELOOP') throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(path)} is a symbolic link, not a stub`)
    throw ioError('open stub', path, err)
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(path)} is not a regular file`)
    if (st.size > MAX_STUB_BYTES) throw new StubError(StubCodes.STUB_INVALID, `${JSON.stringify(path)} is not a valid dustbox stub: larger than ${MAX_STUB_BYTES} bytes`)
    const buf = Buffer.allocUnsafe(Math.min(st.size + 1, MAX_STUB_BYTES + 1))
    let len = 0
    while (len < buf.byteLength) {
      const { bytesRead } = await fh.read(buf, len, buf.byteLength - len, null)
      if (bytesRead === 0) break
      len += bytesRead
    }
    return decodeStub(ctx.crypto, buf.subarray(0, len), { ownerId: ctx.keys.ownerId, macKey: ctx.keys.stubMac, unauthenticated: opts.unauthenticated }, path)
  } finally {
    await fh.close()
  }
}
