// net/: peers over uTP and TCP: identity handshake (Noise XX), encrypted channel, block protocol,
// storage for other owners. Main class: NetNode. Knows nothing of agent/.

export { NetNode, type NetNodeOptions, type NetWarning, type DialTarget, type ConnectOptions } from './node.js'
export { Peer, type RequestOptions } from './peer.js'
export { NetError, NetCodes, type NetCode } from './errors.js'
export { peerIdFromKey, parsePeerId, shortId } from './peer-id.js'
export { ShardStore, shardIdOf, auditProof, type ShardStoreOptions } from './shard-store.js'
export { Ledger } from './ledger.js'
export { Caps, PROTOCOL_VERSION, type Identity } from './handshake.js'
export { MAX_SHARD_BYTES, MAX_FRAME_BYTES, MAX_DEVICE_BYTES, MAX_KEEP_POINTER_BYTES, AuditStatus, PutStatus } from './messages.js'
export { signDeviceCert, decodeDeviceCert, verifyDeviceCert, MAX_DEVICE_NAME_BYTES, type DeviceCert } from './device-cert.js'
export type { DeviceHandler, KeepPointerHandler } from './device-service.js'
export type { Transport, TransportName, LinkName, PathName, Endpoint, RawConnection } from './transport.js'
export { NatObserver, NatTypes, classify, type NatType, type Reachability, type Observation } from './nat-observer.js'
export { PortMapper, type PortMapperOptions, type PortMappingStatus, type PortMappingState, type PortMappingMethod } from './port-mapper.js'
