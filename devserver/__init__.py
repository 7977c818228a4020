"""The development launcher: `make run` (`python -m devserver`) starts the whole platform on one
machine. It sits above the gateway and the services (it starts them and creates the dev
workspace through the gateway's store), so it is not part of kit."""
