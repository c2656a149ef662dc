// The operator process: settings from the environment, cluster from KUBECONFIG (or in-cluster).
import './runtime/node-guard.js'; // first: a clear error on an unsupported Node.js
import * as k8s from '@kubernetes/client-node';
import { buildOperator } from './app.js';
import { configFromEnv } from './config.js';
import { shutdownSignal } from './runtime/manager.js';
import { createLogger } from './runtime/logger.js';

const config = configFromEnv();
const logger = createLogger({ level: config.logLevel, fields: { instance: config.identity } });
const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const { manager } = buildOperator(kc, config, logger);
logger.info('starting', { node: process.version, cluster: kc.getCurrentCluster()?.server, leaderElection: config.leaderElection !== undefined });
const reason = await manager.run(shutdownSignal());
// Losing the lease exits non-zero so the pod restarts as a follower with clean state.
process.exit(reason === 'lost-leadership' ? 1 : 0);
