"""Chat front ends: each turns its platform's messages into Commands and renders Replies."""
