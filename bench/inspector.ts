// A DevTools protocol session with a process started with --inspect=127.0.0.1:PORT: the
// profilers are started and stopped from here, after a warm-up, so that what they record
// is the load alone (a --cpu-prof profile would hold the start-up's module compilation).
import { WebSocket } from 'ws';

export interface InspectorSession {
  call<T>(this: void, method: string, params?: object): Promise<T>;
  close(this: void): void;
}

export async function connectInspector(port: number): Promise<InspectorSession> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const socket = new WebSocket((targets[0] as { webSocketDebuggerUrl: string }).webSocketDebuggerUrl);
  await new Promise((resolve) => socket.once('open', resolve));
  const answers = new Map<number, (result: unknown) => void>();
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown };
    if (message.id === undefined) return;
    answers.get(message.id)?.(message.result);
    answers.delete(message.id);
  });
  let lastId = 0;
  return {
    call<T>(method: string, params: object = {}): Promise<T> {
      const id = ++lastId;
      return new Promise((resolve) => {
        answers.set(id, resolve as (result: unknown) => void);
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}
