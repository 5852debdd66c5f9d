// Checkpoint room: see design/ARCHITECTURE.md; this file names the module namespace.
public enum CheckpointModule {}
