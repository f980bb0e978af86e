// emitted(): a promise for the next emission of an event, as the
// predecessor's registrar offered (the `emitted` method of its event
// emitter): the first argument of the first emission that passes the
// filter; rejected by an `error` emission (`rejectionEvents`) or after
// `timeout` milliseconds. The promise has a cancel() method that removes its
// listeners.

import type { EventEmitter } from 'node:events';

export interface EmittedOptions<Args extends unknown[]> {
  /** Only an emission for which this returns true resolves the promise. */
  filter?: (...args: Args) => boolean;
  /** Resolve with all the arguments as an array instead of the first. */
  multiArgs?: boolean;
  /** Events that reject the promise (default: `['error']`). */
  rejectionEvents?: readonly string[];
  /** Reject after this many milliseconds (default: never). */
  timeout?: number;
}

export type CancelablePromise<T> = Promise<T> & { cancel(): void };

export class EmittedTimeoutError extends Error {
  constructor(ms: number) {
    super(`Promise timed out after ${ms} milliseconds`);
    this.name = 'TimeoutError';
  }
}

export function emittedFrom<T>(
  emitter: EventEmitter,
  event: string,
  options: EmittedOptions<unknown[]>,
): CancelablePromise<T> {
  let cleanup = (): void => undefined;
  const promise = new Promise<T>((resolve, reject) => {
    const rejectionEvents = options.rejectionEvents ?? ['error'];
    let timer: NodeJS.Timeout | undefined;
    const onEvent = (...args: unknown[]) => {
      if (options.filter !== undefined) {
        let pass: boolean;
        try {
          pass = options.filter(...args);
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (!pass) return;
      }
      cleanup();
      resolve((options.multiArgs === true ? args : args[0]) as T);
    };
    const onRejection = (...args: unknown[]) => {
      cleanup();
      reject(options.multiArgs === true ? args : args[0]);
    };
    cleanup = () => {
      emitter.removeListener(event, onEvent);
      for (const e of rejectionEvents) emitter.removeListener(e, onRejection);
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
    emitter.on(event, onEvent);
    for (const e of rejectionEvents) emitter.on(e, onRejection);
    if (options.timeout !== undefined && Number.isFinite(options.timeout)) {
      const ms = options.timeout;
      timer = setTimeout(() => {
        cleanup();
        reject(new EmittedTimeoutError(ms));
      }, ms);
    }
  });
  return Object.assign(promise, { cancel: () => cleanup() });
}
