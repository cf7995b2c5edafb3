// node's llhttp binding as lib/_http_common exposes it (undocumented, stable since Node 12); used by frontdoor/h1.ts.
declare module '_http_common' {
  export class HTTPParser {
    static readonly REQUEST: number;
    static readonly RESPONSE: number;
    static readonly kOnHeaders: number;
    static readonly kOnHeadersComplete: number;
    static readonly kOnBody: number;
    static readonly kOnMessageComplete: number;
    static readonly kLenientNone: number;
    initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
    /** Bytes consumed, or an Error with an `HPE_*` code. */
    execute(data: Buffer): number | Error;
    finish(): number | Error | undefined;
    close(): void;
  }
  export const methods: string[];
}
