import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startRedis, type TestRedis } from './redis-server.js'
import type { Teardown } from './stack.js'

const run = promisify(execFile)

export interface TestRedisCluster {
  /** Every node (masters and replicas), each a private redis-server with cluster mode on. */
  nodes: TestRedis[]
  /** The value for REDIS_CLUSTER_NODES: every node as host:port. */
  nodesEnv: string
}

/**
 * A local Redis Cluster of `masters` masters, each with `replicas` replicas,
 * from `redis-server` binaries on free ports, slots spread by `redis-cli
 * --cluster create`; resolves once every node reports `cluster_state:ok` and
 * every replica has synced with its master.
 * Stopped at teardown.
 */
export async function startRedisCluster(t: Teardown, masters = 3, replicas = 0): Promise<TestRedisCluster> {
  const nodes: TestRedis[] = []
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())))
  for (let i = 0; i < masters * (1 + replicas); i++) {
    // The node's cluster state file goes to its own temp directory (startRedis's --dir).
    // A replica syncs at once (not after the default 5 s delay of a diskless sync).
    nodes.push(
      await startRedis({
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0'],
      }),
    )
  }
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`)
  await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'])
  // Slots are assigned; the nodes agree on it shortly after (gossip). Every
  // replica must also be in place and synced before anything is written: a
  // node that becomes a replica only after a first look (redis-cli assigns
  // them as it goes), or is still in its first sync, holds nothing, and a
  // failover would promote it empty. Bounded.
  const clients = await Promise.all(
    nodes.map(async (node) => {
      const client = new Redis(node.url, { lazyConnect: true })
      client.on('error', () => {})
      await client.connect()
      return client
    }),
  )
  try {
    for (let i = 0; ; i++) {
      const infos = await Promise.all(clients.map(async (c) => ({ cluster: (await c.call('CLUSTER', 'INFO')) as string, replication: await c.info('replication') })))
      const clusterOk = infos.every((info) => info.cluster.includes('cluster_state:ok'))
      const syncedReplicas = infos.filter(({ replication: r }) => r.includes('role:slave') && r.includes('master_link_status:up')).length
      const onlineOnMasters = infos.reduce((n, { replication: r }) => n + (r.includes('role:master') ? (r.match(/state=online/g) ?? []).length : 0), 0)
      if (clusterOk && syncedReplicas === masters * replicas && onlineOnMasters === masters * replicas) break
      if (i >= 400) throw new Error(`the cluster did not come up: state ok ${clusterOk}, ${syncedReplicas} of ${masters * replicas} replicas synced, ${onlineOnMasters} online`)
      await delay(25)
    }
  } finally {
    for (const c of clients) c.disconnect()
  }
  return { nodes, nodesEnv: addresses.join(',') }
}
