import asyncio


async def idle():
    while True:
        await asyncio.sleep(60)


print("heapbase: idle")
asyncio.run(idle())
