// The one shape in which a Durable Object refuses an RPC call from the Worker: an HTTP status and
// a stable code, passed on to the client as they are (workers/http.ts, rpcError, is the only
// place that turns one into a response).

export type RpcError = { status: 400 | 401 | 404 | 409 | 410 | 422 | 503; code: string; message: string };
