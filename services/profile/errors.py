from kit.errors import NotFound


class ProfileNotFound(NotFound):
    def __init__(self, profile_id: str) -> None:
        super().__init__(f"profile {profile_id} not found", field="profile_id")
