using AttentionViz.Backend.Cli;

// One executable: the JSON-RPC server (serve, the default) and the CLI commands.
return await CliApp.RunAsync(args);
