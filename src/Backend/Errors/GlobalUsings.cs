// The application's exceptions and codes are used in every area: one global using instead of one per file.
global using AttentionViz.Backend.Errors;
