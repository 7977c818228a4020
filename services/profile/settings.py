from kit.crypto import blind_index_key
from kit.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    grpc_port: int = 50051
    # Phone numbers written without a country code are read as numbers of this region.
    default_phone_region: str = "KR"

    def blind_key(self) -> bytes:
        """Keys the blind indexes of identifiers: sealed ones are looked up and erased people's
        tombstones kept by it (kit.blind). Changing it loses both."""
        return blind_index_key(self)
