import { render, type JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { session, SIGNED_OUT } from './api.ts';
import { Link, match, navigate, usePath } from './router.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { Clusters } from './pages/Clusters.tsx';
import { ClusterPage } from './pages/Cluster.tsx';
import { OperationPage } from './pages/Operation.tsx';
import './style.css';

function Routes({ path }: { path: string }): JSX.Element {
  let m: Record<string, string> | null;
  if ((m = match('/operations/:id', path))) return <OperationPage id={m.id as string} />;
  if ((m = match('/clusters/:id/:tab?', path))) return <ClusterPage id={m.id as string} tab={m.tab ?? 'snapshots'} />;
  if (path === '/' || path === '/clusters') return <Clusters />;
  return (
    <main id="main">
      <h1>Not found</h1>
      <p>
        Nothing here. <Link href="/">Back to the clusters</Link>.
      </p>
    </main>
  );
}

function App(): JSX.Element {
  const path = usePath();
  const [signedIn, setSignedIn] = useState(session.token() !== null);
  const [notice, setNotice] = useState<string | undefined>();
  useEffect(() => {
    const out = (e: Event): void => {
      session.clear();
      setSignedIn(false);
      setNotice(`Signed out: ${(e as CustomEvent<string>).detail}`);
    };
    window.addEventListener(SIGNED_OUT, out);
    return () => window.removeEventListener(SIGNED_OUT, out);
  }, []);
  if (!signedIn)
    return (
      <SignIn
        notice={notice}
        onSignedIn={() => {
          setNotice(undefined);
          setSignedIn(true);
        }}
      />
    );
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          etcdsnap
        </Link>
        <nav aria-label="Main">
          <Link href="/" aria-current={path === '/' ? 'page' : undefined}>
            Clusters
          </Link>
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            session.clear();
            setSignedIn(false);
            navigate('/');
          }}
        >
          Sign out
        </button>
      </header>
      <Routes path={path} />
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
