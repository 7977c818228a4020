from pydantic import SecretStr

from kit.settings import ServiceSettings, secret_or_generated


class ProfileSettings(ServiceSettings):
    grpc_port: int = 50051
    # Phone numbers written without a country code are read as numbers of this region.
    default_phone_region: str = "KR"
    # Keys the blind indexes of erased people's identifiers (kit.blind); unset in the
    # embedded mode → a random key kept in data_dir. Changing it forgets every tombstone.
    blind_index_key: SecretStr | None = None

    def blind_key(self) -> bytes:
        return secret_or_generated(self.blind_index_key, self.data_dir, "blind-index-key")
