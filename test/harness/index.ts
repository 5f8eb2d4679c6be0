/** Test-only helpers: real etcd clusters, Kubernetes-like data, dumps. */
export { freePort, tempDir } from './net.js';
export { startClusterFromSnapshot, startEtcdCluster, type StartClusterOptions, type TestCluster, type TestMember } from './cluster.js';
export { fillKubernetesLike, kubernetesLikeItems, type FillOptions, type FillResult, type KubernetesLikeItem } from './fill.js';
export { dumpAll, keyCountsByResource, resourceOfKey, type Dump, type KeyCounts } from './dump.js';
