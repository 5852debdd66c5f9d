// Parallel room: see docs/architecture.md; this file names the module namespace.
public enum ParallelModule {}
