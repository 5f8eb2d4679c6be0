/** The node agent: registration, plan loop, reports, schedule, task executor, member supervision. */
export { Agent, type AgentOptions, type AgentStatus } from './agent.js';
export { AgentConfigSchema, flagOf, parseAgentConfig, type AgentConfig, type AgentConfigInput } from './config.js';
export { agentEtcdError, EtcdAccess, readEtcdTls, type EtcdTlsFiles } from './etcd-access.js';
export { ApiClient, certificateChecksum, fetchPinnedCA } from './api-client.js';
export { createMember, ExternalMember, ManagedMember, type LocalMember, type MemberIdentity } from './member.js';
export { Scheduler, systemClock, type Clock } from './scheduler.js';
export { StateStore, writeFileAtomic, type AgentState } from './state.js';
export { TASK_HANDLERS, type TaskContext, type TaskHandler, type TaskHandlers, type TaskResult } from './tasks/index.js';
