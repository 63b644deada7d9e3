import t from 'tap'
import { ChatSocketLimit } from '../src/chat/socket-limit.js'

t.test('admits up to max sockets per chat, each chat counted on its own', async (t) => {
  const limit = new ChatSocketLimit(2)
  t.ok(limit.admit('a'), 'first')
  t.ok(limit.admit('a'), 'second')
  t.notOk(limit.admit('a'), 'a third is refused')
  t.equal(limit.admitted('a'), 2, 'a refusal takes nothing')
  t.ok(limit.admit('b'), 'another chat has its own count')
  t.equal(limit.admitted('b'), 1)
})

t.test('a release gives the admission back; the last one forgets the chat', async (t) => {
  const limit = new ChatSocketLimit(1)
  t.ok(limit.admit('a'))
  t.notOk(limit.admit('a'))
  limit.release('a')
  t.equal(limit.admitted('a'), 0)
  t.ok(limit.admit('a'), 'admitted again after the release')
  limit.release('a')
  limit.release('a')
  t.equal(limit.admitted('a'), 0, 'a release of a chat with no admission does not go below zero')
  t.ok(limit.admit('a'))
  t.notOk(limit.admit('a'), 'still one at most')
})
