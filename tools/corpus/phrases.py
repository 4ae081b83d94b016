"""Phrase lists for the corpus. Each list is split in two by position: even
entries go to the train split, odd entries to the test split, so the splits
share no phrase."""

HUMAN_SHORT = [
    "Hello?", "Yes?", "Hello.", "Yeah?", "Hi.", "Hallo?", "Speaking.", "Yep?",
    "Hello hello?", "Mm, hello?", "Who is it?", "Hey.", "Good morning.", "Hiya.",
    "Yes, hello?", "Uh, hello?", "Morning.", "Hi there.", "Hello, yes?", "Go ahead.",
]
HUMAN_THREE = [
    "Hello, this is Maria.", "Yes, who's calling?", "Hi, Tom speaking.", "Hello, Smith residence.",
    "Yeah, what is it?", "Hello, Jenny here.", "Hi, this is Dave.", "Hello, who is this?",
    "Good evening, Carol speaking.", "Yes, can I help you?", "Hello, Peter Brown.", "Hi, it's Anna.",
    "This is Mark.", "Hello, Garcia household.", "Yes? Who's there?", "Hello, Linda speaking.",
    "Hey, it's Sam.", "Hi, who's this please?", "Hello, Robert here.", "Yes, this is she.",
]
HUMAN_BUSINESS = [
    "Thank you for calling Acme, this is John.", "Good morning, Baker and Sons, how can I help?",
    "Hello, Northside Dental, Sarah speaking.", "Riverside Motors, this is Mike.",
    "City Plumbing, how may I help you?", "Good afternoon, Green Law Office.",
    "Parkview Clinic, Emma speaking.", "Hi, Sunrise Bakery, can I help you?",
    "Blue Sky Travel, this is Kate.", "Morning, Harbor Insurance, Tim here.",
    "Thanks for calling Delta Print, Joe speaking.", "Hello, Maple Street Pharmacy.",
]
MACHINE_PERSONAL = [
    "Hi, you've reached John Smith. I can't come to the phone right now. Please leave a message after the tone.",
    "Hello, this is Maria. Sorry I missed your call. Leave your name and number and I'll get back to you as soon as I can.",
    "Hey, it's Dave. I'm not around right now, so leave a message and I'll call you back.",
    "You have reached the Johnson family. We are not available to take your call. Please leave a message at the beep.",
    "Hi, this is Anna. I'm either on the other line or away from my phone. Please leave a detailed message and I will return your call.",
    "Hello, you've reached Peter and Linda. We can't answer right now, but if you leave a message we'll get back to you.",
    "Hi there, this is Carol. I'm sorry I can't take your call. Please leave your name, number and a short message.",
    "This is Tom. Leave a message. Thanks.",
    "Hey, you've got Sam's phone. I'm busy at the moment. Leave a message and I'll get back to you later today.",
    "Hello, thank you for calling. Nobody is home right now. Please leave a message after the tone and we will call you back.",
    "Hi, it's Jenny. I can't pick up right now. Text me or leave a voicemail. Bye!",
    "You've reached Robert Brown. I am out of the office until Monday. Please leave a message.",
    "Hello, you have reached the voicemail of Emily Clark. I'm unable to answer. Please leave your message after the beep.",
    "Hi, this is Mark's phone. I'll call you back as soon as possible. Please leave a message.",
]
MACHINE_BUSINESS = [
    "Thank you for calling Acme Corporation. Our office is currently closed. Our business hours are nine to five, Monday through Friday. Please leave a message.",
    "You have reached Northside Dental. If this is an emergency, please hang up and dial nine one one. Otherwise leave a message after the tone.",
    "Thank you for calling Riverside Motors. All of our staff are busy with other customers. Please leave your name and number and we will return your call.",
    "Welcome to City Plumbing. We are unable to take your call right now. Leave a message and a technician will call you back.",
    "Hello and thank you for calling Green Law Office. Please leave a detailed message including your phone number and the best time to reach you.",
    "You've reached the sales department of Blue Sky Travel. We are away from our desks. Please leave a message.",
    "Thank you for calling Parkview Clinic. Our office hours are eight to six. Please leave a message and we will call you back on the next business day.",
    "Harbor Insurance, after hours line. Please leave your policy number and a short message after the tone.",
]
MACHINE_CARRIER = [
    "The person you are trying to reach is not available. At the tone, please record your message.",
    "The wireless customer you are calling is not available. Please leave a message after the tone.",
    "Your call has been forwarded to an automatic voice message system.",
    "The number you have dialed is not available. Please leave a message after the tone.",
    "The subscriber you have called is not available. Please record your message at the tone.",
    "Please leave your message for",
    "You have reached the voice mailbox of",
    "The mailbox of the person you are calling is not available. Please try again later or leave a message.",
]
MACHINE_TAIL = [
    "five five five, one two three four.", "John Smith.", "two zero one, four four seven, eight nine one two.",
    "Maria Garcia.", "When you have finished recording, you may hang up.", "Press one for more options.",
]
MACHINE_SHORT = [
    "Please leave a message.", "Leave a message.", "Leave your message after the tone.",
    "Record your message.", "Leave a message now.", "Please record your message at the tone.",
]
ANNOUNCEMENT = [
    "The number you have dialed is not in service. Please check the number and try again.",
    "We're sorry, your call cannot be completed as dialed.",
    "All circuits are busy now. Please try your call again later.",
    "The number you have reached has been disconnected.",
    "Your call cannot be completed at this time.",
    "The number you have called has been changed.",
]
BABBLE = [
    "and then we went to the market to buy some bread and cheese",
    "the weather today will be cloudy with a chance of rain later",
    "I told him that it was not going to work but he did it anyway",
    "in other news the local team won the championship last night",
    "could you pass me the salt please and the pepper too",
    "the meeting has been moved to Thursday afternoon at three",
    "she said that the children were already asleep upstairs",
    "turn left at the lights and then go straight for two miles",
]


def _half(items, split):
    return items[0::2] if split == "train" else items[1::2]


def split(name):
    return {
        "human_short": _half(HUMAN_SHORT, name),
        "human_three": _half(HUMAN_THREE, name),
        "human_business": _half(HUMAN_BUSINESS, name),
        "machine_personal": _half(MACHINE_PERSONAL, name),
        "machine_business": _half(MACHINE_BUSINESS, name),
        "machine_carrier": _half(MACHINE_CARRIER, name),
        "machine_tail": MACHINE_TAIL,
        "machine_short": _half(MACHINE_SHORT, name),
        "announcement": ANNOUNCEMENT,
    }
