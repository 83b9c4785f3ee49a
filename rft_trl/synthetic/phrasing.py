"""Interchangeable stock phrasings of the corpus (system prompts, requests, thoughts, answers).

Each slot has several variants so that boilerplate repeats across samples without being one
fixed string. Placeholders: {task}, {purpose}, {tool}, {tools}.
"""

from __future__ import annotations

REACT_SYSTEM_INTROS: tuple[str, ...] = (
    "You are a helpful assistant that can use tools to answer the user.",
    "You are an agent with access to external tools. Use them to solve the user's task.",
    "Answer the user's request. You may call the tools listed below.",
    "You are an AI assistant. The following tools are available to you.",
)
REACT_TOOLS_HEADER = "Tools:"
REACT_FORMAT_INSTRUCTIONS = (
    "Use this format:\n"
    "Thought: reason about what to do next\n"
    "Action: the tool to call, one of [{tools}]\n"
    "Action Input: the arguments as a JSON object\n"
    "After each tool result, continue with a new Thought. When you can answer, write:\n"
    "Thought: your final reasoning\n"
    "Final Answer: the answer for the user"
)

JSON_SYSTEM_INTROS: tuple[str, ...] = (
    "You are an expert in composing function calls. You are given a question and a set of functions.",
    "You can call functions to fulfil the user's query. The available functions are listed below.",
    "Based on the query, call one or more of the functions below with the right arguments.",
)
JSON_FUNCTIONS_HEADER = "Functions in JSON format:"
JSON_FORMAT_INSTRUCTIONS: tuple[str, ...] = (
    'Respond only with a JSON list of calls, each as {"name": <function name>, "arguments": <object>}.',
    "Reply with the function calls as a JSON list of objects with the keys name and arguments.",
)

# User requests. {task} is one or more tasks joined by TASK_JOINERS.
REQUEST_FRAMES: tuple[str, ...] = (
    "{task}.",
    "Can you {task}?",
    "Could you please {task}?",
    "Please {task}.",
    "I need you to {task}.",
    "Here is what I need: {task}.",
    "Hi! {task}, please.",
    "My request: {task}.",
    "I would like you to {task}.",
    "Quick one: {task}.",
)
TASK_JOINERS: tuple[str, ...] = (" and ", ", then ", ". Also, ", "; after that, ", ", and also ")

# Thoughts of a tool-calling turn: an opener with the purpose, then a clause naming the tool.
FIRST_THOUGHT_OPENERS: tuple[str, ...] = (
    "The user wants to know {purpose}.",
    "The user is asking about {purpose}.",
    "The request is about {purpose}.",
    "I need to find {purpose} for the user.",
    "To answer this, I first need {purpose}.",
    "The user needs {purpose}.",
    "Based on the user's request, I should look up {purpose}.",
)
NEXT_THOUGHT_OPENERS: tuple[str, ...] = (
    "Next, I need {purpose}.",
    "Now I should look up {purpose}.",
    "The next step is to get {purpose}.",
    "I still need {purpose}.",
    "Got it. Now I need {purpose}.",
    "That part is done; next is {purpose}.",
)
TOOL_CLAUSES: tuple[str, ...] = (
    "I will call {tool}.",
    "The right tool for this is {tool}.",
    "So I need to call {tool} with the given input.",
    "Let me use {tool}.",
    "I can get this with {tool}.",
    "I should use the {tool} tool.",
    "The best action is {tool}.",
    "Let me call the right tool.",
    "A tool call will answer this.",
)

FINAL_THOUGHTS: tuple[str, ...] = (
    "I now have all the information I need.",
    "I have everything required to answer.",
    "I can now give the final answer.",
    "The tool results are enough to answer the request.",
    "I know the final answer now.",
)
# (lead, capitalise the first answer clause)
ANSWER_LEADS: tuple[tuple[str, bool], ...] = (
    ("", True),
    ("Here is what I found: ", False),
    ("Based on the results, ", False),
    ("According to the tools, ", False),
    ("Sure! ", True),
    ("Done. ", True),
)
ANSWER_JOINERS: tuple[str, ...] = ("; ", ", and ", ". Also, ")

# Extra stock sentences a ReAct thought may carry (`CorpusSettings.stock_sentences`): chatter that
# depends on no input, for corpora where boilerplate is a larger share of the response.
EXTRA_STOCK_SENTENCES: tuple[str, ...] = (
    "I will keep the answer short and clear.",
    "It is important to use the tools correctly.",
    "I should double-check the arguments before calling anything.",
    "This should only take a moment.",
    "I will make sure the input matches what the user asked for.",
    "Let me think about this step by step.",
    "There is no need to ask the user for more details.",
    "I have all the details I need for this step.",
    "I will report back once the result is in.",
    "It is best to follow the required format exactly.",
    "Nothing else is needed before this step.",
    "The user will appreciate a precise answer.",
    "I want to avoid any unnecessary steps.",
    "Careful work now saves time later.",
    "I will not guess; the tool will tell me.",
    "That is the plan for now.",
)
