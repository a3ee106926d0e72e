// dht/: peer discovery in the BitTorrent mainline DHT. Main class: Discovery (docs/discovery.md).
export { Discovery, ANNOUNCE_INTERVAL_MS, LOOKUP_INTERVAL_MS, REPUT_INTERVAL_MS, DIAL_TIMEOUT_MS } from './discovery.js'
export type { DiscoveryOptions, DiscoveryEvents, DialFn, PeerEvent, CandidateEvent, Pointer, Identity } from './discovery.js'
export { DhtNode, PUBLIC_BOOTSTRAP, DEFAULT_DHT_PORT, parseBootstrap } from './dht-node.js'
export type { DhtNodeOptions, DhtStats, Endpoint } from './dht-node.js'
export { publicTopic, groupTopic, groupKey, ownerTopic, parseGroupSecret, checkNetworkName, epochsAt, epochOf, LABELS, type Topic } from './topics.js'
export { sealPointer, openPointer, signItem, verifyItem, pointerTarget, POINTER_SALT, MAX_POINTER_PAYLOAD } from './pointer.js'
export { DhtError, DhtCodes, type DhtCode } from './errors.js'
