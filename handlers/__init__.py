"""What Herald does, platform-neutral: commands in, replies out. No chat, network or scheduler library here."""
