// Package redrive tries the messages of the dead-letter queue again through
// the handler, once whatever made them fail has been fixed: a key whose
// deletion was cancelled, a role or permission put right, a tag policy
// corrected.
//
// Three kinds of message share the queue (see Decode):
//
//   - the handler's own record of a permanent failure (tagger.DeadLetter,
//     kind "kms-autotagger.dead-letter", version 1), holding the original
//     event, or its text when it was not JSON: such an event can never
//     succeed and is reported, not tried;
//   - Lambda's record of an asynchronous invocation that failed every attempt
//     (its on-failure destination), holding the event in requestPayload;
//   - an event EventBridge could not deliver to the function, as the message
//     body, with the error in the message attributes ERROR_CODE,
//     ERROR_MESSAGE, RULE_ARN, TARGET_ARN.
//
// Anything else is reported as unrecognized and left alone.
//
// Run deletes a message only once its event ends tagged or skipped. Every
// other message stays in the queue and is made visible again at the end of
// the run (or when the run is interrupted), with the reason it still fails.
// The handler given to Run must not dead-letter into the queue it reads
// (build it without a dead-letter queue), or a permanent failure would be
// written back as a second copy of the message.
package redrive
