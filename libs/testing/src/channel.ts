/**
 * A queue of values pushed by callbacks (a client's handlers), awaited one at
 * a time, so a test waits on the event itself rather than on a sleep.
 */
export function channel<T>() {
  const items: T[] = []
  const waiters: ((v: T) => void)[] = []
  return {
    push(v: T) {
      const w = waiters.shift()
      if (w) w(v)
      else items.push(v)
    },
    /** The next value; rejects after `timeoutMs` without one (the failure names the wait, not tap's file timeout). */
    next(timeoutMs = 15_000): Promise<T> {
      const v = items.shift()
      if (v !== undefined) return Promise.resolve(v)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`nothing came in ${timeoutMs} ms`))
        }, timeoutMs)
        const waiter = (value: T) => {
          clearTimeout(timer)
          resolve(value)
        }
        waiters.push(waiter)
      })
    },
  }
}
