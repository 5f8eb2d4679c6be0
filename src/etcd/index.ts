/** The etcd module: client (health, members, snapshot stream, keys), member process, restore. */
export { EtcdClient, type EtcdConnectOptions } from './client.js';
export type { ClusterHealth, EndpointStatus, EtcdClientOptions, HealthOptions, MemberHealth, MemberInfo, RangeKeysOptions } from './types.js';
export type { EtcdTls } from './endpoint.js';
export { isUnreachable, toEtcdError } from './errors.js';
export { waitHealthy, type WaitHealthyOptions } from './wait.js';
export { memberArgs, startMember, waitMembersHealthy, type MemberProcess, type StartMemberOptions } from './member.js';
export { restoreSnapshotFile, snapshotFileStatus, type RestoreResult, type RestoreSnapshotOptions, type SnapshotFileStatus } from './restore.js';
