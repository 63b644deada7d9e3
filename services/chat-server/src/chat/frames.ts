import {
  ChatClientFrames,
  ChatClientFramesV2,
  compileFrameParser,
  type ChatMessageArgsV2,
  type EndChatArgs,
  type FrameParser,
  type JoinArgsV2,
  type LoadMoreArgs,
  type ReceiptArgs,
  type TypingArgs,
} from '@switchboard/protocol'

/** A frame of either version; v1 frames are a subset of v2's. */
export type ChatFrame =
  | { type: 'Join'; args: JoinArgsV2 }
  | { type: 'ChatMessage'; args: ChatMessageArgsV2 }
  | { type: 'LoadMore'; args: LoadMoreArgs }
  | { type: 'Typing'; args: TypingArgs }
  | { type: 'Received'; args: ReceiptArgs }
  | { type: 'Read'; args: ReceiptArgs }
  | { type: 'EndChat'; args: EndChatArgs }

export type ChatFrameType = ChatFrame['type']
export type ArgsOf<T extends ChatFrameType> = Extract<ChatFrame, { type: T }>['args']

// v1 accepts only seed 004's frame types; its frames are a subset of v2's.
export const CHAT_FRAME_PARSERS: Record<1 | 2, FrameParser<ChatFrame>> = {
  1: compileFrameParser(ChatClientFrames),
  2: compileFrameParser(ChatClientFramesV2),
}
