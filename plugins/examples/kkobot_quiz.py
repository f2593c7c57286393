"""퀴즈: `# 퀴즈` asks a question and waits for the same user's answer (context.ask); `# 퀴즈점수`."""

from __future__ import annotations

from kkobot.command import Cooldown, Plugin, command

plugin = Plugin("quiz", config={"seconds": 30})

QUESTIONS = [
    ("대한민국의 수도는?", ("서울", "서울특별시")),
    ("한글을 만든 왕은?", ("세종", "세종대왕")),
    ("1년은 몇 개월?", ("12", "12개월", "열두")),
    ("무지개는 몇 가지 색?", ("7", "7가지", "일곱")),
]


@command("퀴즈", "퀴즈를 냅니다. 같은 사람이 제한 시간 안에 답하세요.", examples=("# 퀴즈",),
         cooldown=Cooldown(user=5))
async def quiz(context):
    asked = await context.store.incr("asked", scope="global")
    question, answers = QUESTIONS[(asked - 1) % len(QUESTIONS)]
    seconds = context.config["seconds"]
    answer = await context.ask(f"[퀴즈] {question} ({seconds}초)", timeout=seconds)
    if answer is None:
        return None  # the user already got the "time is up" notice
    if answer.strip() in answers:
        score = await context.store.incr("score", scope="user")
        return f"정답입니다! {context.sender}님 누적 {score}점"
    return f"아쉽네요. 정답은 {answers[0]}입니다."


@command("퀴즈점수", "이 방에서 내 퀴즈 점수.", examples=("# 퀴즈점수",))
async def score(context):
    points = await context.store.get("score", 0, scope="user")
    return f"{context.sender}님 퀴즈 점수: {points}점"
