// Communicator contract tests.
