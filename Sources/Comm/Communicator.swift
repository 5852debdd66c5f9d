// Comm: Communicator protocol and implementations.
