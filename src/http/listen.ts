// Binding a node:net / node:http server with the error every listener reports the same way.

import type { AddressInfo, Server } from 'node:net';
import type { ListenAddress } from '../config/schema';
import { SluiceError } from '../errors';

/** Resolves with the bound port; rejects with SLUICE_LISTEN_FAILED naming the listener and address. */
export function listenOn(server: Server, addr: ListenAddress, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new SluiceError('SLUICE_LISTEN_FAILED', `${what} cannot listen on ${addr.host}:${addr.port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
