import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { PubSub } from '@switchboard/domain'
import { startRedis, type TestRedis } from '@switchboard/testing'

/*
 * PubSub over a real redis-server. A SUBSCRIBE is held pending with
 * CLIENT PAUSE, and refused with an ACL user that may not use the channel.
 */

async function server(t: Test): Promise<TestRedis> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  return redis
}

async function client(t: Test, url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true })
  t.teardown(() => redis.disconnect())
  redis.on('error', () => {})
  await redis.connect()
  return redis
}

/** How many subscribers Redis counts on the channel. */
async function numsub(admin: Redis, channel: string): Promise<number> {
  const [, count] = (await admin.pubsub('NUMSUB', channel)) as [string, number]
  return Number(count)
}

/** Publishes on a marker channel the listener also hears, so everything published before it has been delivered. */
async function drained(admin: Redis, subscriber: Redis): Promise<void> {
  await subscriber.subscribe('marker')
  const heard = new Promise<void>((resolve) => {
    const onMessage = (channel: string) => {
      if (channel !== 'marker') return
      subscriber.off('message', onMessage)
      resolve()
    }
    subscriber.on('message', onMessage)
  })
  await admin.publish('marker', 'x')
  await heard
}

t.test('a second listener on a channel being subscribed resolves only once Redis confirmed the SUBSCRIBE', async (t) => {
  const redis = await server(t)
  const admin = await client(t, redis.url)
  const subscriber = await client(t, redis.url)
  const pubsub = new PubSub(subscriber)
  await admin.client('PAUSE', 300, 'ALL')
  const resolved: string[] = []
  const first = pubsub.subscribe('c', () => {}).then(() => resolved.push('first'))
  const second = pubsub.subscribe('c', () => {}).then(() => resolved.push('second'))
  // Everything on this connection waits for Redis; the pause holds the SUBSCRIBE's reply.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(resolved, [], 'neither listener resolves while the SUBSCRIBE is unanswered')
  await Promise.all([first, second])
  t.same(resolved.sort(), ['first', 'second'])
  t.equal(await numsub(admin, 'c'), 1, 'one subscription in Redis for both listeners')
})

t.test('a refused SUBSCRIBE fails every listener waiting on it; the next listener subscribes again', async (t) => {
  const redis = await server(t)
  const admin = await client(t, redis.url)
  // A user that may use every command but no channel yet.
  await admin.call('ACL', 'SETUSER', 'listener', 'on', '>secret-password', '~*', '+@all', 'resetchannels')
  const subscriber = await client(t, `redis://listener:secret-password@127.0.0.1:${redis.port}`)
  const pubsub = new PubSub(subscriber)
  const heard: string[] = []
  const first = pubsub.subscribe('c', (m) => heard.push(`first ${m}`))
  const second = pubsub.subscribe('c', (m) => heard.push(`second ${m}`))
  await t.rejects(first, /NOPERM/)
  await t.rejects(second, /NOPERM/, 'the listener that joined the pending SUBSCRIBE is told it failed too')
  t.equal(pubsub.channelCount, 0, 'the channel is forgotten')

  await admin.call('ACL', 'SETUSER', 'listener', '&c', '&marker')
  const stop = await pubsub.subscribe('c', (m) => heard.push(`third ${m}`))
  t.equal(await numsub(admin, 'c'), 1, 'a later listener sent a new SUBSCRIBE, and Redis took it')
  await admin.publish('c', 'hello')
  await drained(admin, subscriber)
  t.same(heard, ['third hello'], 'only the listener that is subscribed hears the channel')
  await stop()
  t.equal(await numsub(admin, 'c'), 0, 'the last listener to leave unsubscribed')
  t.equal(pubsub.channelCount, 0)
})

t.test('listeners are counted: the last to leave unsubscribes, a stop called twice counts once', async (t) => {
  const redis = await server(t)
  const admin = await client(t, redis.url)
  const subscriber = await client(t, redis.url)
  const pubsub = new PubSub(subscriber)
  const heard: string[] = []
  const [stopA, stopB] = await Promise.all([pubsub.subscribe('c', (m) => heard.push(`a ${m}`)), pubsub.subscribe('c', (m) => heard.push(`b ${m}`))])
  t.equal(pubsub.channelCount, 1)
  await admin.publish('c', '1')
  await drained(admin, subscriber)
  await stopA()
  await stopA()
  t.equal(await numsub(admin, 'c'), 1, 'still subscribed while b listens')
  await admin.publish('c', '2')
  await drained(admin, subscriber)
  t.same(heard, ['a 1', 'b 1', 'b 2'])
  await stopB()
  t.equal(await numsub(admin, 'c'), 0, 'unsubscribed once the last listener left')
  t.equal(pubsub.channelCount, 0)
})

t.test('without waitForRedis, a connection that is not ready fails at once and registers nothing', async (t) => {
  const redis = await server(t)
  const admin = await client(t, redis.url)
  const subscriber = new Redis(redis.url, { lazyConnect: true })
  t.teardown(() => subscriber.disconnect())
  const pubsub = new PubSub(subscriber)
  await t.rejects(pubsub.subscribe('c', () => {}), /not ready/)
  t.equal(pubsub.channelCount, 0)
  t.equal(subscriber.status, 'wait', 'nothing was sent: the connection was not even opened')
  t.equal(await numsub(admin, 'c'), 0)
})

t.test('a message goes to the listeners there were when it arrived, whoever joins or leaves while it is handed out', async (t) => {
  const redis = await server(t)
  const subscriber = await client(t, redis.url)
  const pubsub = new PubSub(subscriber)
  const heard: string[] = []
  let stopB: () => Promise<void> = async () => {}
  let late: Promise<() => Promise<void>> | undefined
  // a leaves, makes b leave and a late listener join, all while the first message is being handed out.
  const stopA: () => Promise<void> = await pubsub.subscribe('c', (m) => {
    heard.push(`a ${m}`)
    void stopA()
    void stopB()
    late ??= pubsub.subscribe('c', (m2) => heard.push(`late ${m2}`))
  })
  stopB = await pubsub.subscribe('c', (m) => heard.push(`b ${m}`))
  const same = (m: string) => heard.push(`same ${m}`)
  const stopSame = await pubsub.subscribe('c', same)
  await pubsub.subscribe('c', same)
  pubsub.deliverLocally('c', '1')
  t.same(heard, ['a 1', 'b 1', 'same 1'], 'b still gets the message it was there for; the late listener does not; a listener added twice hears once')
  await late
  pubsub.deliverLocally('c', '2')
  t.same(heard.slice(3), ['same 2', 'late 2'], 'then a and b are gone and the late listener hears')
  await stopSame()
  pubsub.deliverLocally('c', '3')
  t.same(heard.slice(5), ['late 3'], 'a listener added twice leaves with one stop')
})
