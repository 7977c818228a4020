from kit.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    grpc_port: int = 50051
    # Phone numbers written without a country code are read as numbers of this region.
    default_phone_region: str = "KR"
