namespace AttentionViz.Backend.Errors;

/// <summary>
/// Every code a JSON-RPC error reply can carry (docs/protocol.md, "Errors"): JSON-RPC's own, then the application's.
/// </summary>
public enum AppErrorCode
{
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    RequestCanceled = -32800,
    ModelLoadFailed = -32001,
    ModelFileInvalid = -32002,
    InternalError = -32003,
    MemoryBudgetExceeded = -32004,
}
