"""The channel names every service spells the same: dispatch sends on them, journeys name
them in a send's fallback order (and check them at save). Pure: names only."""

EMAIL, SMS, ALIMTALK, FRIENDTALK, PUSH, WEBPUSH, INAPP, WEBHOOK = (
    "email", "sms", "alimtalk", "friendtalk", "push", "webpush", "inapp", "webhook")
CHANNELS = (EMAIL, SMS, ALIMTALK, FRIENDTALK, PUSH, WEBPUSH, INAPP, WEBHOOK)
