import type { Socket } from 'socket.io-client';

/** The next `event` on this client socket, or a rejection naming it after `ms`. */
export const next = <T>(s: Socket, event: string, ms = 20_000) =>
  new Promise<T>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no ${event} within ${ms} ms`)), ms);
    s.once(event, (p: T) => {
      clearTimeout(t);
      res(p);
    });
  });
