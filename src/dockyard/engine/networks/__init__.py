"""The engine's networks. Until the networking issue lands: Docker's predefined networks
(bridge, host, none) with stable IDs, and the API's shape for user-defined ones (refused)."""
