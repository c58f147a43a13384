"""Erlang C and Erlang A (Palm / Mandelbaum-Zeltyn): what a single-skill queue should do.

Both models: Poisson arrivals at ``rate`` per second, exponential handle times of mean
``handle`` seconds, ``agents`` identical agents, FIFO. Erlang A adds exponential patience
of mean ``patience`` seconds: a caller still waiting when its patience runs out abandons.

Erlang C is computed exactly (through the Erlang B recursion, stable for any size). Erlang
A is computed numerically from its birth-death chain (truncated where the stationary
probabilities fall below 1e-13 of the largest): the arriving caller's virtual wait, given
``j`` callers ahead of it, is a sum of exponentials of rates ``agents/handle + i/patience``
(i = j..0), so the chance it is answered, and its mean wait when answered, follow from a
recurrence; the chance it is answered within ``t`` comes from uniformization of the same
phase chain.

Service level definitions (both reported by the simulator):
  ``service_level(t)``           answered within t / (answered + abandoned)
  ``service_level_answered(t)``  answered within t / answered
Without abandonment the two are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

_CUTOFF = 1e-13


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of ``agents`` servers under ``load`` Erlangs (stable recursion)."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that an arriving caller waits (all agents busy); 1.0 if load >= agents."""
    if load >= agents:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


def _check(rate: float, handle: float, agents: int) -> None:
    if rate <= 0 or handle <= 0 or agents < 1:
        raise ValueError("rate and handle must be > 0 and agents >= 1")


@dataclass(frozen=True)
class ErlangC:
    """M/M/N: ``rate`` arrivals/s, mean ``handle`` s, ``agents`` agents."""

    rate: float
    handle: float
    agents: int

    def __post_init__(self) -> None:
        _check(self.rate, self.handle, self.agents)

    @property
    def load(self) -> float:
        """Offered load A = rate x handle, in Erlangs."""
        return self.rate * self.handle

    @property
    def stable(self) -> bool:
        return self.load < self.agents

    @property
    def occupancy(self) -> float:
        return min(1.0, self.load / self.agents)

    @property
    def p_wait(self) -> float:
        """P(an arriving caller finds every agent busy)."""
        return erlang_c(self.agents, self.load)

    @property
    def p_abandon(self) -> float:
        return 0.0

    @property
    def asa(self) -> float:
        """Average speed of answer, seconds (zero waits included)."""
        return math.inf if not self.stable else self.p_wait * self.handle / (
            self.agents - self.load)

    def p_wait_longer(self, t: float) -> float:
        """P(wait > t)."""
        if not self.stable:
            return 1.0
        return self.p_wait * math.exp(-(self.agents - self.load) * t / self.handle)

    def service_level(self, t: float) -> float:
        """P(answered within t)."""
        return 1.0 - self.p_wait_longer(t)

    def service_level_answered(self, t: float) -> float:
        return self.service_level(t)


@dataclass(frozen=True)
class ErlangA:
    """M/M/N+M: like ErlangC plus exponential patience of mean ``patience`` seconds."""

    rate: float
    handle: float
    agents: int
    patience: float
    _pi: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self.rate, self.handle, self.agents)
        if self.patience <= 0:
            raise ValueError("patience must be > 0")
        object.__setattr__(self, "_pi", self._stationary())

    @property
    def load(self) -> float:
        return self.rate * self.handle

    @property
    def stable(self) -> bool:
        return True  # abandonment always stabilizes the queue

    def _stationary(self) -> list[float]:
        """P(k callers in the system), k = 0.., truncated at the 1e-13 relative tail."""
        mu, theta, n = 1.0 / self.handle, 1.0 / self.patience, self.agents
        logs = [0.0]
        k, peak = 0, 0.0
        while True:
            k += 1
            out = min(k, n) * mu + max(0, k - n) * theta
            logs.append(logs[-1] + math.log(self.rate / out))
            peak = max(peak, logs[-1])
            falling = self.rate < out
            if k > n and falling and logs[-1] - peak < math.log(_CUTOFF):
                break
            if k > 10_000_000:
                raise ValueError("Erlang A: state space too large")
        weights = [math.exp(x - peak) for x in logs]
        total = math.fsum(weights)
        return [w / total for w in weights]

    @property
    def p_wait(self) -> float:
        """P(an arriving caller finds every agent busy) (PASTA)."""
        return math.fsum(self._pi[self.agents:])

    @property
    def mean_queue(self) -> float:
        n = self.agents
        return math.fsum((k - n) * p for k, p in enumerate(self._pi) if k > n)

    def _phases(self) -> tuple[list[float], list[float], list[float]]:
        """Per phase j (callers ahead): arrival mass, P(answered), E[wait; answered]."""
        mu, theta, n = 1.0 / self.handle, 1.0 / self.patience, self.agents
        mass = self._pi[n:]
        served: list[float] = []
        wait: list[float] = []
        for j in range(len(mass)):
            total_rate = n * mu + (j + 1) * theta
            advance = (n * mu + j * theta) / total_rate
            s = advance * (served[-1] if served else 1.0)
            w = s / total_rate + (advance * wait[-1] if wait else 0.0)
            served.append(s)
            wait.append(w)
        return mass, served, wait

    @property
    def p_answered(self) -> float:
        mass, served, _ = self._phases()
        return math.fsum(self._pi[: self.agents]) + math.fsum(
            m * s for m, s in zip(mass, served, strict=True))

    @property
    def p_abandon(self) -> float:
        return 1.0 - self.p_answered

    @property
    def asa(self) -> float:
        """Mean wait of answered callers, seconds (zero waits included)."""
        mass, _, wait = self._phases()
        return math.fsum(m * w for m, w in zip(mass, wait, strict=True)) / self.p_answered

    def service_level(self, t: float) -> float:
        """P(answered within t) over every caller (answered + abandoned)."""
        return math.fsum(self._pi[: self.agents]) + self._answered_within(t)

    def service_level_answered(self, t: float) -> float:
        return self.service_level(t) / self.p_answered

    def p_wait_longer(self, t: float) -> float:
        """P(not answered within t): waited longer than t, or abandoned."""
        return 1.0 - self.service_level(t)

    def _answered_within(self, t: float) -> float:
        """Mass of waiting arrivals answered within t: uniformization of the phase chain."""
        if t <= 0:
            return 0.0
        mu, theta, n = 1.0 / self.handle, 1.0 / self.patience, self.agents
        p = list(self._pi[n:])
        phases = len(p)
        advance = [n * mu + j * theta for j in range(phases)]
        uni = n * mu + phases * theta
        stay = [1.0 - (a + theta) / uni for a in advance]
        move = [a / uni for a in advance]
        x = uni * t
        served, result, cumulative, m = 0.0, 0.0, 0.0, 0
        while True:
            weight = math.exp(-x + m * math.log(x) - math.lgamma(m + 1))
            result += weight * served
            cumulative += weight
            if cumulative > 1.0 - 1e-12 or (m > x and weight < 1e-300):
                break
            served += p[0] * move[0]
            p = [p[j] * stay[j] + (p[j + 1] * move[j + 1] if j + 1 < phases else 0.0)
                 for j in range(phases)]
            m += 1
        # served(m) only grows: the Poisson tail left out adds at most (1 - cumulative).
        return result + (1.0 - cumulative) * served


Model = ErlangC | ErlangA


def model(rate: float, handle: float, agents: int, patience: float | None) -> Model:
    """Erlang A when ``patience`` is set, else Erlang C."""
    if patience is None:
        return ErlangC(rate, handle, agents)
    return ErlangA(rate, handle, agents, patience)
