/** Shapes the etcd module hands out. IDs are hex, as etcdctl prints them. */

export interface EtcdClientOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. At least one. */
  endpoints: string[];
  /** How long `connect()` waits for any endpoint to answer. Default 5000 ms. */
  dialTimeoutMs?: number;
  /** Deadline of each unary request (status, member list, range, health read). Default 5000 ms. */
  requestTimeoutMs?: number;
}

export interface MemberInfo {
  /** Member id in hex. */
  id: string;
  /** Empty while a member that was added has not started yet. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface EndpointStatus {
  endpoint: string;
  memberId: string;
  /** `0` when the member knows no leader. */
  leaderId: string;
  clusterId: string;
  /** Store revision from the response header of Maintenance/Status. */
  revision: number;
  /** Physically allocated backend size in bytes. */
  dbSize: number;
  /** Backend bytes in use (smaller than dbSize until a defrag). */
  dbSizeInUse: number;
  /** Server version, e.g. `3.4.23`. */
  version: string;
  raftTerm: number;
  raftIndex: number;
  isLearner: boolean;
  /** Alarms and errors the member reports (e.g. `NOSPACE`); empty when fine. */
  errors: string[];
}

export interface MemberHealth {
  name: string;
  id: string;
  /** The client URL that was checked (the first that answered, else the first one). */
  endpoint: string;
  healthy: boolean;
  error?: string;
  status?: EndpointStatus;
}

export interface ClusterHealth {
  /** Every member healthy and a leader known. */
  healthy: boolean;
  leaderId?: string;
  memberCount: number;
  members: MemberHealth[];
  /** Human sentences, one per problem; empty when healthy. */
  reasons: string[];
}

export interface HealthOptions {
  /** Deadline of each member's status and read. Default: the client's requestTimeoutMs. */
  timeoutMs?: number;
}

export interface RangeKeysOptions {
  /** Read at this revision; default the current revision (fixed after the first page). */
  revision?: number;
  /** Only keys with this prefix; default all keys. */
  prefix?: string | Buffer;
  /** Keys per request. Default 10000. */
  pageSize?: number;
  /** Read from this member only; default any endpoint that answers. */
  endpoint?: string;
}
