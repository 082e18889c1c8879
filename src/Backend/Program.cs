using AttentionViz.Backend.Cli;
using AttentionViz.Backend.Rpc;

// One executable: the JSON-RPC server (serve, the default) and the CLI commands.
// generate-protocol is build.sh's step (the extension's generated protocol types), not a user command.
if (args is ["generate-protocol", var directory]) return ProtocolTypeScript.Write(directory);
return await CliApp.RunAsync(args);
