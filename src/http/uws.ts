// The one module that imports uWebSockets.js, so the HTTP server library can be swapped.
// Everything else (front doors, the benchmark's mock upstream) goes through these names.
import uws = require('@trufflesuite/uws-js-unofficial');

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';

export const App = uws.App;
export const SSLApp = uws.SSLApp;

/** Port a listen socket is bound to (useful after listening on port 0). */
export function listenPort(socket: uws.us_listen_socket): number {
  return uws.us_socket_local_port(socket);
}

/** Stop accepting on a listen socket; open connections stay until they end. */
export function closeListenSocket(socket: uws.us_listen_socket): void {
  uws.us_listen_socket_close(socket);
}

/** Closes every socket of an app (listen sockets and open connections); present in v20.30, absent from its typings. */
export function closeApp(app: uws.TemplatedApp): void {
  (app as uws.TemplatedApp & { close(): void }).close();
}
