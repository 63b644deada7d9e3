import { ChatClientFrames, ChatClientFramesV2, compileFrameParser, type ChatClientFrameV2, type FrameParser } from '@switchboard/protocol'

/** A client frame of either version (the registry's); v1 frames are a subset of v2's. */
export type ChatFrame = ChatClientFrameV2

export type ChatFrameType = ChatFrame['type']
export type ArgsOf<T extends ChatFrameType> = Extract<ChatFrame, { type: T }>['args']

// v1 accepts only seed 004's frame types; its frames are a subset of v2's.
export const CHAT_FRAME_PARSERS: Record<1 | 2, FrameParser<ChatFrame>> = {
  1: compileFrameParser(ChatClientFrames),
  2: compileFrameParser(ChatClientFramesV2),
}
