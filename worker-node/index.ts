/** Programmatic worker nodes: start one inside your own process (tests, custom launchers). */
export { WorkerNode, WorkerNodeFatalError, type WorkerNodeOptions } from './node.ts';
